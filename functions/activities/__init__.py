"""Activities (notes, tasks, calls, meetings, logged emails) and record timelines."""
