# PLACEHOLDER: replaced by branch ai-layer
