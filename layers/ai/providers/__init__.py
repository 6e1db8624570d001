"""Provider adapters: each turns an AIRequest into one SDK call and the SDK's failures into layers/ai/errors.py."""
