"""inr2vec: embeddings of INRs computed from their weights alone (thesis Sec. 5.3, App. C.3)."""
