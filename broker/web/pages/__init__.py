"""The pages of the web interface, one controller per area (sign-in, buyer, maker, orders, admin)."""
