//! One flow run: source -> tasks -> destination, with bounded memory, cancellation and counters.
