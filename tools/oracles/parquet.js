// parquet.js FILE: reads a Parquet file with hyparquet (an independent JavaScript
// implementation of the format) and prints, as JSON, the schema of its top-level columns
// and every row with each value tagged by its JavaScript type. Numbers are printed with
// String() (shortest round-trip decimal; NaN, Infinity, -Infinity spelled out; -0 kept), BigInts
// (INT64 columns) in decimal, so the Go side compares exact values.
//
// Output: {"columns":[{"name","type","converted_type","logical_type","repetition_type"}],
//          "num_rows": n, "rows":[[{"t":"string","v":"s0"},{"t":"bigint","v":"3"},...]]}
//
// hyparquet is an ES module; this script stays CommonJS like the others here.

const [file] = process.argv.slice(2)
if (!file) {
  console.error('usage: node parquet.js FILE.parquet')
  process.exit(2)
}

function tag(v) {
  switch (typeof v) {
  case 'bigint': return { t: 'bigint', v: v.toString() }
  case 'number': return { t: 'number', v: Object.is(v, -0) ? '-0' : String(v) }
  case 'string': return { t: 'string', v }
  default: return { t: v === null ? 'null' : typeof v, v: String(v) }
  }
}

async function main() {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } = await import('hyparquet')
  const buf = await asyncBufferFromFile(file)
  const metadata = await parquetMetadataAsync(buf)
  const columns = parquetSchema(metadata).children.map(({ element }) => ({
    name: element.name,
    type: element.type ?? null,
    converted_type: element.converted_type ?? null,
    logical_type: element.logical_type?.type ?? null,
    repetition_type: element.repetition_type ?? null,
  }))
  const objects = await parquetReadObjects({ file: buf, metadata })
  const rows = objects.map(o => columns.map(c => tag(o[c.name])))
  process.stdout.write(JSON.stringify({ columns, num_rows: Number(metadata.num_rows), rows }))
}

main().catch(err => {
  console.error(`parquet.js ${file}: ${err.stack || err}`)
  process.exit(1)
})
