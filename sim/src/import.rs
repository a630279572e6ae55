//! Importers that turn other recorded data into [`crate::recording::Recording`]s.
//! (Implemented by the importer work; see `weather_sweeps`.)
