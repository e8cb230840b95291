"""The landing page: each role goes where its work is."""
