"""Contracts: sales attach a tenant's DPAs to its customer contracts, follow each contract's DPA status, close it
(won only with an executed, current DPA) and download a signed bundle of the executed documents."""
