"""HTTP routes. Each decodes, authorises through the policy, calls one action, encodes."""
