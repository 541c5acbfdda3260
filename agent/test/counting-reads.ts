import { SelectQueryNode, TableNode, type KyselyPlugin } from 'kysely';
import type { Database } from '../../sandbox/storage/database.ts';

/** Counts the SELECTs a store makes, by table, through a Kysely plugin on the same database. */
export function countingReads(database: Database): { database: Database; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      if (SelectQueryNode.is(node)) {
        const from = node.from?.froms[0];
        const table = from && TableNode.is(from) ? from.table.identifier.name : '(other)';
        reads.set(table, (reads.get(table) ?? 0) + 1);
      }
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  return { database: { ...database, db: database.db.withPlugin(plugin) }, reads };
}
