// PostgreSQL client program of test/clients: node-postgres (npm pg).
// Usage: node pg.js SCENARIO URL TABLE
// Prints one line per result row, command and error (severity, SQLSTATE, message).
'use strict';
const { Client } = require('pg');

const [scenario, url, T] = process.argv.slice(2);

function fmt(v) {
  if (v === null) return 'NULL';
  if (Buffer.isBuffer(v)) return '0x' + v.toString('hex');
  if (v instanceof Date) return 'Date:' + v.toISOString();
  if (typeof v === 'object') return typeof v + ':' + JSON.stringify(v);
  return typeof v + ':' + JSON.stringify(v);
}

async function q(c, what, text, values) {
  try {
    const r = await c.query(typeof text === 'string' ? { text, values } : text);
    for (const row of r.rows) console.log('row: ' + Object.values(row).map(fmt).join('|'));
    console.log(`${what}: ${r.command} ${r.rowCount}`);
  } catch (e) {
    if (e.code) console.log(`${what}: error ${e.severity} ${e.code} ${e.message}`);
    else console.log(`${what}: error ${e.message}`);
  }
}

const scenarios = {
  async basic(c) {
    await q(c, 'all rows', `SELECT * FROM ${T} ORDER BY id`);
    await q(c, 'params', 'SELECT $1::int + 1 AS a, $2::text AS b, $3::bytea AS c, $4::numeric AS d, $5::text IS NULL AS e',
      [41, 'ünï 🐘', Buffer.from([0, 1, 255]), '3.14159', null]);
    await q(c, 'literals', `SELECT 1::int2 AS a, 3::int8 AS b, 1.5::float4 AS c, '{"a":1}'::json AS d,
      ARRAY['a',NULL,'c'] AS e, '2001-02-03'::date::text AS f, NULL::text AS g`);
  },
  async errors(c) {
    await q(c, 'syntax', 'SELEC 1');
    await q(c, 'unique', `INSERT INTO ${T} VALUES ($1, $2)`, [1, 'dup']);
    await q(c, 'division', 'SELECT 1 / $1::int', [0]);
    await q(c, 'undefined table', 'SELECT * FROM no_such_table_x');
    await q(c, 'after errors', `SELECT count(*) FROM ${T}`);
  },
  async tx(c) {
    await q(c, 'begin', 'BEGIN');
    await q(c, 'insert', `INSERT INTO ${T} VALUES ($1, $2)`, [10, 'ten']);
    await q(c, 'rollback', 'ROLLBACK');
    await q(c, 'begin', 'BEGIN');
    await q(c, 'insert', `INSERT INTO ${T} VALUES ($1, $2)`, [11, 'eleven']);
    await q(c, 'failing insert', `INSERT INTO ${T} VALUES ($1, $2)`, [1, 'dup']);
    await q(c, 'in failed tx', 'SELECT 1');
    await q(c, 'commit', 'COMMIT');
    await q(c, 'begin', 'BEGIN');
    await q(c, 'insert', `INSERT INTO ${T} VALUES ($1, $2)`, [12, 'twelve']);
    await q(c, 'commit', 'COMMIT');
    await q(c, 'after commit', `SELECT id, v FROM ${T} ORDER BY id`);
  },
  async prepared(c) {
    for (let i = 0; i < 15; i++) {
      await q(c, 'named', { name: 'byid', text: `SELECT v FROM ${T} WHERE id = $1`, values: [i % 4] });
    }
    for (let i = 0; i < 12; i++) {
      await q(c, 'named insert', { name: 'ins', text: `INSERT INTO ${T} VALUES ($1, $2)`, values: [100 + i, 'v' + i] });
    }
    await q(c, 'named insert dup', { name: 'ins', text: `INSERT INTO ${T} VALUES ($1, $2)`, values: [100, 'dup'] });
    await q(c, 'count', `SELECT count(*) FROM ${T}`);
  },
};

(async () => {
  const c = new Client({ connectionString: url });
  c.on('error', (e) => console.log(`client error: ${e.code || ''} ${e.message}`));
  try {
    await c.connect();
  } catch (e) {
    console.log(`connect: error ${e.severity || ''} ${e.code || ''} ${e.message}`);
    return;
  }
  await scenarios[scenario](c);
  await c.end();
})();
