import { orderEntry } from "./order-entry.bench";
orderEntry({ subscribers: 1 }).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });
