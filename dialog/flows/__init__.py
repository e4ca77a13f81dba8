"""Call flows shipped with the agent (YAML data)."""
