"""Files in the workspace's part of the files bucket (imports, exports)."""
