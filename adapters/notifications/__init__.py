"""Notifications to people (a maker about a new invitation, a buyer about a new quote): log by default, SMTP opt-in."""
