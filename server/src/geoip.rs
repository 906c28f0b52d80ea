//! Where a visitor is, from their IP address, with a MaxMind-format database (GeoLite2-City or
//! GeoIP2-City) the admin points `geoip.database` at. Optional: without one, agents simply see
//! no location. The file is read once at start and looked up in memory.

use maxminddb::{Reader, path};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// An open location database.
pub struct Geo {
    /// The file it came from (for `kefu config show`).
    path: PathBuf,
    /// The whole database, in memory.
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo").field("path", &self.path).finish()
    }
}

/// A place, in English.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The country's name.
    pub country: Option<String>,
    /// The city's name.
    pub city: Option<String>,
}

impl Geo {
    /// Opens the database at `path`; the message says what is wrong with the file.
    pub fn open(path: &Path) -> Result<Geo, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        Ok(Geo {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// Where `ip` is, as far as the database knows (nothing for private addresses).
    pub fn locate(&self, ip: IpAddr) -> Place {
        let Ok(found) = self.reader.lookup(ip) else {
            return Place::default();
        };
        let name = |keys: &[&str; 3]| -> Option<String> {
            found
                .decode_path::<&str>(&path![keys[0], keys[1], keys[2]])
                .ok()
                .flatten()
                .map(|name| crate::util::text::truncate(name, 100))
        };
        Place {
            country: name(&["country", "names", "en"]),
            city: name(&["city", "names", "en"]),
        }
    }
}
