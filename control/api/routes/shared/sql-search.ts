/** `likeContains`: a LIKE pattern (with `ESCAPE '!'`) matching text that contains `search` literally. */

/** `%search%` with LIKE metacharacters escaped by `!`; use with `LIKE ? ESCAPE '!'`. */
export function likeContains(search: string): string {
  return '%' + search.replace(/[!%_]/g, (character) => '!' + character) + '%';
}
