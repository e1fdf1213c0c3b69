"""What the service is about: the way of a question, the gate, the FAQ, retrieval and the verified answers."""
