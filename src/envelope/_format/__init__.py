"""Wire formats (private): context canonicalisation, the v1 message header, the record
batch header, and header inspection. Pure byte layouts: no KMS, no keys."""
