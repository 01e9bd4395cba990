// Newest first over an oldest-first list. GET /api/messages lists oldest first (keyset on timestamp, id) and
// has no other order, so the console follows next_cursor to the last page and shows what it read newest
// first, a page at a time ("Load more" shows the next older page of what was read).

import { readPages } from "./api.js";

export const READ_LIMIT = 2000; // matches read at most per refresh (10 requests of 200)

/** Every item of the list `fetchPage` reads (following next_cursor), newest first. `complete` is false when
 * more than `max` items exist: the items are then the oldest `max`, and the caller says so. */
export async function readNewestFirst(fetchPage, query = {}, max = READ_LIMIT) {
  const { items, complete } = await readPages(fetchPage, query, max);
  return { items: items.reverse(), complete };
}
