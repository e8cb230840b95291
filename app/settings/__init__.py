"""Settings an admin changes in the console: the refund approval threshold (for everything, or per
merchant or sales channel), the default restocking fee of new rules, the queues' ageing hours and
the largest photo. The environment gives the defaults (app/config.py); a stored value wins."""
