//! History formats: native JSON lines, Jepsen EDN, Porcupine corpus logs (being built).
