#!/usr/bin/env bash
# Measures failure detection and identity takeover: three brokers on 127.0.0.2-4, kill -9
# of n1, then how long until n2 lists n1 OFFLINE and until a plain client dialing n1's
# address is served again. Loopback only; stops what it started, by PID.
# Usage: npm run build && PERIOD=500 bash scripts/measure-failover.sh
set -u
PERIOD=${PERIOD:-500}
cd "$(dirname "$0")/.."
D=$(mktemp -d); PORT=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
NATS=${PEERBROKER_NATS_SERVER:-$(bash scripts/ensure-nats.sh)}
"$NATS" -a 127.0.0.1 -p $PORT > $D/nats.log 2>&1 & NP=$!; sleep 0.5
P=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.2',0));print(s.getsockname()[1])")
start() { node dist/src/cli/main.js start --node-id $1 --listen $2:$P --nats nats://127.0.0.1:$PORT --cluster m --period-ms $PERIOD --module dist/examples/bank/index.js >> $D/$1.log 2>&1 & echo $!; }
B1=$(start n1 127.0.0.2); B2=$(start n2 127.0.0.3); B3=$(start n3 127.0.0.4); sleep 3
node -e "
const grpc=require('@grpc/grpc-js'); const {bankProto}=require('./dist/examples/bank'); const {brokerProto}=require('./dist/src/broker');
const lost='127.0.0.2:$P', obs='127.0.0.3:$P';
const call=(ep)=>new Promise(r=>{const c=new (bankProto().bank.Banking)(ep,grpc.credentials.createInsecure());c.GetBalance({accountId:'a'},{deadline:Date.now()+300},(e,v)=>{c.close();r(e?null:v.servedBy)})});
const mem=()=>new Promise(r=>{const c=new (brokerProto().peerbroker.v1.Broker)(obs,grpc.credentials.createInsecure());c.Members({},{deadline:Date.now()+300},(e,v)=>{c.close();r(e?[]:v.members)})});
(async()=>{ require('child_process').execSync('kill -9 $B1'); const t0=Date.now(); let det=0, tk=0, by='';
 while(Date.now()-t0<10000 && (!det||!tk)){ if(!det){const m=(await mem()).find(x=>x.nodeId==='n1'); if(m&&m.status==='OFFLINE') det=Date.now()-t0;} if(!tk){const s=await call(lost); if(s){tk=Date.now()-t0; by=s;}} await new Promise(r=>setTimeout(r,10)); }
 console.log('period '+$PERIOD+' ms: detection (n2 lists n1 OFFLINE) '+det+' ms; address served again by '+by+' after '+tk+' ms'); })();"
kill $B2 $B3; sleep 1; kill $NP; rm -rf $D
