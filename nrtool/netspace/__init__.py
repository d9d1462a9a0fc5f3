"""NetSpace (thesis Chapter 4): trained networks as PReps, BN fusion, and (to come) the embedding space."""
