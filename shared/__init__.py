"""The kernel every layer and capability may use: settings, errors, ids, cursors, schemas, clock. No I/O."""
