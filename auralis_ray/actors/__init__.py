"""Ray actors: synthesis (GPU when the cluster has one) and stations (the broadcast rings)."""
