"""Reports computed in the database: pipeline summary, forecast, win rate and cycle, activity counts."""
