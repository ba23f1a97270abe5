//! How a template is kept at rest: zstd-compressed, then cut into parts small
//! enough for one DynamoDB item each (an item holds at most 400 KB).

use crate::error::{Error, Result};
use crate::session::Template;

/// The largest part, leaving room under DynamoDB's 400 KB item limit for the keys
/// and attribute names stored beside it.
pub const PART_BYTES: usize = 350 * 1024;

/// The largest compressed template a session is created with: a DynamoDB
/// transaction carries at most 4 MB, and the session's head and first history
/// entry travel with the snapshot. Compaction writes its parts one by one and is
/// bound by the template limit only.
pub const MAX_COMPRESSED_BYTES: usize = 3_500_000;

/// Compaction keeps every `KEEP_EVERY`th snapshot when it writes the next one (the
/// first template is number 0 and always kept), so any version is rebuilt from a
/// kept template and the log of at most this many compactions.
pub const KEEP_EVERY: u64 = 5;

/// Whether the snapshot numbered `number` (0 for the first template, then one
/// more at each compaction) stays when a newer one replaces it.
pub fn is_kept(number: u64) -> bool {
    number.is_multiple_of(KEEP_EVERY)
}

/// zstd's default level: a 1.5 MB template compresses in a few milliseconds.
const LEVEL: i32 = 3;

/// A compressed template cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub parts: Vec<Vec<u8>>,
}

impl Snapshot {
    pub fn encode(template: &Template) -> Result<Snapshot> {
        let compressed = zstd::bulk::compress(template.as_str().as_bytes(), LEVEL)
            .map_err(|e| Error::unexpected(format!("compressing the template: {e}")))?;
        Ok(Snapshot {
            parts: compressed.chunks(PART_BYTES).map(<[u8]>::to_vec).collect(),
        })
    }

    /// A template a session is created with, compressed: it must fit the
    /// creating transaction.
    pub fn encode_to_create(template: &Template) -> Result<Snapshot> {
        let snapshot = Snapshot::encode(template)?;
        if snapshot.compressed_len() > MAX_COMPRESSED_BYTES {
            return Err(Error::too_large(format!(
                "the template compresses to {} bytes; at most {MAX_COMPRESSED_BYTES} can be stored at creation",
                snapshot.compressed_len()
            )));
        }
        Ok(snapshot)
    }

    pub fn compressed_len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    /// Joins and decompresses the parts. `expected_len` (the compressed size
    /// recorded with the session) catches a read that saw only some parts.
    pub fn decode(parts: &[&[u8]], expected_len: usize) -> Result<Template> {
        let compressed = parts.concat();
        if compressed.len() != expected_len {
            return Err(Error::unexpected(format!(
                "the stored template is incomplete ({} of {expected_len} bytes)",
                compressed.len()
            )));
        }
        let raw_len = zstd::zstd_safe::get_frame_content_size(&compressed)
            .ok()
            .flatten()
            .ok_or_else(|| Error::unexpected("the stored template is not a zstd frame"))?;
        let bytes = zstd::bulk::decompress(&compressed, raw_len as usize)
            .map_err(|e| Error::unexpected(format!("decompressing the template: {e}")))?;
        let json = String::from_utf8(bytes)
            .map_err(|_| Error::unexpected("the stored template is not UTF-8"))?;
        Ok(Template::from_canonical_json(json.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_of(len: usize, seed: u64) -> Template {
        // A template of poorly compressible text, to force several parts.
        let mut x = seed;
        let text: String = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        Template::from_canonical_json(format!(r#"{{"page":{{"x":"{text}"}}}}"#).into())
    }

    #[test]
    fn round_trips_through_several_parts() {
        let t = template_of(1_500_000, 7);
        let s = Snapshot::encode(&t).unwrap();
        assert!(s.parts.len() >= 2, "parts: {}", s.parts.len());
        assert!(s.parts.iter().all(|p| p.len() <= PART_BYTES));
        let parts: Vec<&[u8]> = s.parts.iter().map(Vec::as_slice).collect();
        assert_eq!(Snapshot::decode(&parts, s.compressed_len()).unwrap(), t);
    }

    #[test]
    fn a_missing_part_is_an_error_not_a_short_template() {
        let t = template_of(1_000_000, 3);
        let s = Snapshot::encode(&t).unwrap();
        let parts: Vec<&[u8]> = s.parts.iter().skip(1).map(Vec::as_slice).collect();
        assert!(Snapshot::decode(&parts, s.compressed_len()).is_err());
    }

    #[test]
    fn refuses_what_cannot_be_stored() {
        let t = template_of(8_000_000, 11);
        assert_eq!(
            Snapshot::encode_to_create(&t).unwrap_err().code.number(),
            4013
        );
        // Compaction has only the template limit.
        assert!(Snapshot::encode(&t).is_ok());
    }
}
