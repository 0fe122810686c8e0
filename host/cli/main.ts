// Placeholder CLI: replaced by the real command set.
const [cmd] = process.argv.slice(2)
console.log(`robot: '${cmd ?? ""}' is not implemented yet`)
process.exitCode = 2
