"""What one experiment is: its configuration files resolved into one experiment, the settings and their
defaults, the checks with their messages, the keys a job is planned with, and the schema. Cheap to import (no torch)."""
