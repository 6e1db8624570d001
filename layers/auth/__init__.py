"""Auth layer: Firebase ID tokens, workspace API keys, sessions."""
