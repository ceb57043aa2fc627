"""Lab 02 (API first): the contract, the REST API, and its behaviour through the gateway."""
