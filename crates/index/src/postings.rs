//! Sorted posting lists of compact internal document ids, and the cursor operations the
//! search runs over them (galloping seek, intersection).

/// A compact internal document id: an index into the index's slot arrays. Slots of removed
/// documents are reused, so an id means nothing outside one index.
pub(crate) type DocId = u32;

/// One document in a token's posting list, with the token's weighted frequency in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Posting {
    /// The document.
    pub(crate) doc: DocId,
    /// Weighted term frequency (name occurrences count `NAME_WEIGHT` times).
    pub(crate) tf: u32,
}

/// Something with a document id, kept sorted by it.
pub(crate) trait HasDoc: Copy {
    fn doc(&self) -> DocId;
}

impl HasDoc for DocId {
    fn doc(&self) -> DocId {
        *self
    }
}

impl HasDoc for Posting {
    fn doc(&self) -> DocId {
        self.doc
    }
}

/// Inserts `item` into the list sorted by document id; returns false if the id was there.
pub(crate) fn insert<T: HasDoc>(list: &mut Vec<T>, item: T) -> bool {
    // New documents usually get the highest id, so appending is the common case.
    if list.last().is_none_or(|last| last.doc() < item.doc()) {
        list.push(item);
        return true;
    }
    match list.binary_search_by_key(&item.doc(), HasDoc::doc) {
        Ok(_) => false,
        Err(at) => {
            list.insert(at, item);
            true
        }
    }
}

/// Removes the entry for `doc`; returns whether there was one.
pub(crate) fn remove<T: HasDoc>(list: &mut Vec<T>, doc: DocId) -> bool {
    match list.binary_search_by_key(&doc, HasDoc::doc) {
        Ok(at) => {
            list.remove(at);
            true
        }
        Err(_) => false,
    }
}

/// The first position `>= from` whose document id is `>= target` (or `list.len()`), by
/// exponential then binary search, so a run of seeks over one list costs O(k log(n/k)).
pub(crate) fn seek<T: HasDoc>(list: &[T], from: usize, target: DocId) -> usize {
    if from >= list.len() || list[from].doc() >= target {
        return from;
    }
    // Invariant: list[lo].doc() < target.
    let mut lo = from;
    let mut step = 1usize;
    let mut hi = from + step;
    while hi < list.len() && list[hi].doc() < target {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    let hi = hi.min(list.len());
    lo + 1 + list[lo + 1..hi].partition_point(|x| x.doc() < target)
}

/// The documents present in every list (each sorted), sorted.
pub(crate) fn intersect(mut lists: Vec<&[DocId]>) -> Vec<DocId> {
    lists.sort_by_key(|l| l.len());
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    let mut pos = vec![0usize; rest.len()];
    let mut out = Vec::new();
    'next: for &d in first.iter() {
        for (list, p) in rest.iter().zip(pos.iter_mut()) {
            *p = seek(list, *p, d);
            match list.get(*p) {
                Some(&x) if x == d => {}
                Some(_) => continue 'next,
                None => break 'next,
            }
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keep_order() {
        let mut v: Vec<DocId> = Vec::new();
        for d in [5, 1, 9, 3, 7, 3] {
            insert(&mut v, d);
        }
        assert_eq!(v, [1, 3, 5, 7, 9]);
        assert!(remove(&mut v, 5));
        assert!(!remove(&mut v, 5));
        assert_eq!(v, [1, 3, 7, 9]);
    }

    #[test]
    fn seek_finds_lower_bound() {
        let v: Vec<DocId> = (0..100).map(|x| x * 2).collect();
        for from in [0usize, 1, 10, 50, 99, 100] {
            for target in 0..210 {
                let want = from.max(v.partition_point(|&x| x < target));
                assert_eq!(seek(&v, from, target), want, "from {from} target {target}");
            }
        }
    }

    #[test]
    fn intersect_lists() {
        let a: Vec<DocId> = (0..50).collect();
        let b: Vec<DocId> = (0..50).step_by(3).collect();
        let c: Vec<DocId> = (0..50).step_by(2).collect();
        assert_eq!(
            intersect(vec![&a, &b, &c]),
            [0, 6, 12, 18, 24, 30, 36, 42, 48]
        );
        assert!(intersect(vec![&a, &[]]).is_empty());
        assert!(intersect(vec![]).is_empty());
    }
}
