//! The vserverd D-Bus contract (bus name, object paths, types, errors).
