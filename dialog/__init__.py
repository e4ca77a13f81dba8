"""Call flows as data and the pure state machine that runs them."""
