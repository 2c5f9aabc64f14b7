"""Generated stubs for the vendored Kubernetes KMS v2 API (see README.md here)."""
