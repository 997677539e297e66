"""rowforge."""
