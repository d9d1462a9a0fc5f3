"""Models and evaluations on embeddings: classifier (``classifier``), retrieval (``retrieval``).

Both take the ``embeddings`` artifact (e.g. inr2vec embeddings) and never import the CLI.
"""
