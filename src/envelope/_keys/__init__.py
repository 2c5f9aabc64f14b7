"""Key sourcing (private): where a message's input key comes from and where it is
found again: KMS calls through :class:`KeySource`, the data-key cache, stored keys,
k-of-n threshold sharing, the cluster-secret part and the input-key derivation."""
