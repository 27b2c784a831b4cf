"""The web application's shell: sessions, CSRF, security headers, sign-in guards, the layout and the stylesheet.

Domains render their own pages (`<domain>/pages.py`, templates under `<domain>/templates/<domain>/`) on this base,
calling the same service functions as their JSON controllers.
"""
