// MySQL/MariaDB client program of test/clients: node mysql2 (npm mysql2).
// Usage: node mysql2.js SCENARIO HOST PORT USER PASSWORD DB TABLE
// Prints one line per result row, affected-row count and error (code, number, SQLSTATE, message).
'use strict';
const mysql = require('mysql2/promise');
const mysqlCb = require('mysql2');

const [scenario, host, port, user, password, database, T] = process.argv.slice(2);
const opts = { host, port: Number(port), user, password, database, supportBigNumbers: true, bigNumberStrings: true };

function fmt(v) {
  if (v === null) return 'NULL';
  if (Buffer.isBuffer(v)) return '0x' + v.toString('hex');
  if (v instanceof Date) return 'Date:' + (isNaN(v) ? 'invalid' : v.toISOString());
  return typeof v + ':' + JSON.stringify(v);
}

function printErr(what, e) {
  if (e.errno) console.log(`${what}: error ${e.code} ${e.errno} ${e.sqlState} ${e.sqlMessage}`);
  else console.log(`${what}: error ${e.code || ''} ${e.message}`);
}

async function run(c, how, what, sql, values) {
  try {
    const [r] = await c[how](sql, values);
    if (Array.isArray(r)) {
      for (const row of r) console.log('row: ' + Object.values(row).map(fmt).join('|'));
      console.log(`${what}: ${r.length} rows`);
    } else {
      console.log(`${what}: affected ${r.affectedRows} warnings ${r.warningStatus}`);
    }
  } catch (e) {
    printErr(what, e);
  }
}
const q = (c, what, sql, values) => run(c, 'query', what, sql, values);
const x = (c, what, sql, values) => run(c, 'execute', what, sql, values);

// waitRunning polls, from c inside a transaction (so that through baton it reads the primary's
// processlist, where the other connection's transaction runs), until a statement containing
// marker runs.
async function waitRunning(c, marker) {
  await c.query('BEGIN');
  for (let i = 0; i < 500; i++) {
    const [r] = await c.query(
      "SELECT count(*) AS n FROM information_schema.processlist WHERE info LIKE ? AND info NOT LIKE '%processlist%'",
      ['%' + marker + '%']);
    if (Number(r[0].n) > 0) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  await c.query('COMMIT');
}

const scenarios = {
  async basic(c) {
    // The JSON column j is the json scenario's (issue 9 MySQL item 1).
    const cols = 'id, i, n, s, b, ts, dt, f, bo';
    await q(c, 'query all', `SELECT ${cols} FROM ${T} ORDER BY id`);
    await x(c, 'execute all', `SELECT ${cols} FROM ${T} ORDER BY id`);
    await x(c, 'params', 'SELECT ? + 1 AS a, ? AS b, ? AS c, ? IS NULL AS d', [41, 'ünï 🐘', Buffer.from([0, 1, 255]), null]);
    await q(c, 'literals', "SELECT 1 AS a, 2.50 AS b, 'x' AS c, NULL AS d, CAST('2001-02-03' AS DATE) AS e");
  },
  async errors(c) {
    await q(c, 'syntax', 'SELEC 1');
    await x(c, 'unique', `INSERT INTO ${T} VALUES (?, ?)`, [1, 'dup']);
    await q(c, 'strict division', `INSERT INTO ${T} VALUES (1/0, 'x')`);
    await q(c, 'undefined table', 'SELECT * FROM no_such_table_x');
    await x(c, 'after errors', `SELECT count(*) AS n FROM ${T}`);
  },
  async tx(c) {
    await c.beginTransaction();
    await x(c, 'insert', `INSERT INTO ${T} VALUES (?, ?)`, [10, 'ten']);
    await c.rollback();
    await c.beginTransaction();
    await x(c, 'insert', `INSERT INTO ${T} VALUES (?, ?)`, [11, 'eleven']);
    await x(c, 'failing insert', `INSERT INTO ${T} VALUES (?, ?)`, [1, 'dup']);
    await c.commit();
    await q(c, 'after commit', `SELECT id, v FROM ${T} ORDER BY id`);
  },
  // execute ×100: one prepared statement reused.
  async execute100(c) {
    const seen = {};
    let errs = 0;
    for (let i = 0; i < 100; i++) {
      try {
        const [r] = await c.execute(`SELECT v FROM ${T} WHERE id = ?`, [i % 4]);
        const k = r.length ? r[0].v : 'none';
        seen[k] = (seen[k] || 0) + 1;
      } catch (e) {
        errs++;
        printErr('execute', e);
      }
    }
    console.log('results', JSON.stringify(seen), 'errors', errs);
    for (let i = 0; i < 20; i++) await x(c, 'insert', `INSERT INTO ${T} VALUES (?, ?)`, [100 + i, 'v' + i]);
    await x(c, 'count', `SELECT count(*) AS n FROM ${T}`);
  },
  // issue 9 MySQL item 1: JSON columns are objects, not strings.
  async json(c) {
    for (const how of ['query', 'execute']) {
      try {
        const [r] = await c[how](`SELECT j FROM ${T} ORDER BY id`);
        for (const row of r) console.log(`${how}: ${typeof row.j} ${JSON.stringify(row.j)}`);
      } catch (e) {
        printErr(how, e);
      }
    }
    await x(c, 'json function', "SELECT JSON_OBJECT('a', 1, 'b', JSON_ARRAY(1, 2)) AS o");
  },
  // issue 9 MySQL item 2: a SET run as a prepared statement, then reads.
  async time_zone(c) {
    await x(c, 'set', "SET time_zone = '+05:00'");
    await q(c, 'query tz', 'SELECT @@time_zone AS tz');
    await x(c, 'execute tz', 'SELECT @@time_zone AS tz');
    await q(c, 'query table', `SELECT id, CAST(ts AS CHAR) AS ts FROM ${T} ORDER BY id`);
    await x(c, 'execute table', `SELECT id, CAST(ts AS CHAR) AS ts FROM ${T} ORDER BY id`);
  },
  // Streaming a result row by row.
  async stream() {
    const c = mysqlCb.createConnection(opts);
    await new Promise((resolve) => {
      let n = 0;
      let sum = 0;
      c.query(`SELECT id, v FROM ${T} ORDER BY id`).stream()
        .on('data', (row) => { n++; sum += row.id; if (n <= 3) console.log('row:', row.id, row.v); })
        .on('error', (e) => printErr('stream', e))
        .on('end', () => { console.log('streamed', n, 'rows, id sum', sum); resolve(); });
    });
    c.end();
  },
  // issue 9 MySQL item 3: CONNECTION_ID() is the handshake's thread id, and KILL QUERY of it from
  // another connection interrupts the running statement.
  async kill_query(c) {
    const [r] = await c.query('SELECT CONNECTION_ID() AS id');
    console.log('CONNECTION_ID() equals the handshake thread id:', String(r[0].id) === String(c.connection.threadId));
    const k = await mysql.createConnection(opts);
    await c.query('BEGIN');
    const began = Date.now();
    // Both results are printed after both are in: the two replies race each other.
    const sleep = c.query('SELECT SLEEP(5) AS kill_query_marker_node').then(
      ([r]) => `sleep: ${JSON.stringify(r)}`,
      (e) => `sleep: error ${e.code} ${e.errno} ${e.sqlState} ${e.sqlMessage}`);
    await waitRunning(k, 'kill_query_marker_node');
    await q(k, 'kill query', `KILL QUERY ${c.connection.threadId}`);
    console.log(await sleep);
    console.log('interrupted:', Date.now() - began < 4000);
    await q(c, 'after kill', 'SELECT 1 AS one');
    await c.query('COMMIT');
    await k.end();
  },
};

(async () => {
  let c;
  try {
    c = await mysql.createConnection(opts);
  } catch (e) {
    printErr('connect', e);
    return;
  }
  await scenarios[scenario](c);
  await c.end();
})();
