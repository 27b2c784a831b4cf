"""The DPA service: self-service GDPR Data Processing Agreements for a SaaS processor and its Subscribers."""

__version__ = "0.1.0"
