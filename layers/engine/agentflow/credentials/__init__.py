"""Per-user credentials (README, "Credentials"): their models, envelope encryption (a KMS key when deployed, a key
file on the local stack), the store's items, start-time checks and run-time resolution."""
