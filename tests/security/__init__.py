"""Security features: reuse detection (§5.7), supersede (§5.8), the scanner-safe flow (§5.9)."""
