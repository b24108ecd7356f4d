"""The event bus: envelope, subjects, JetStream client, outbox relay and durable consumers."""
