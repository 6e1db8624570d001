"""AWS clients (boto3), created lazily and swappable in tests."""
