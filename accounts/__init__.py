"""The user model (the `users` table of plan step M003), password hashing and one-time tokens."""
