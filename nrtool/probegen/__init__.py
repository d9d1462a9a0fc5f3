"""ProbeGen: a weight-space encoder that reads an INR by querying it at learned points."""
