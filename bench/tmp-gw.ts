import { gatewayVersusBare } from "./guard.bench";
gatewayVersusBare().then((r) => { console.log(JSON.stringify(r)); process.exit(0); });
