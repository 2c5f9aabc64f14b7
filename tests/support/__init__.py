"""Test helpers: real servers, PKI, JWTs, fault injection, vector loaders."""
