"""Entry points built on the library: the command line and the dashboard's computations."""
