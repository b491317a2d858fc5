"""The policy knowledge base (data) and the recommender."""
