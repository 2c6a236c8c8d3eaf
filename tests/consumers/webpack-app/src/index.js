import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { Workspace } from '@tessera/react';
import '@tessera/react/styles.css';

const q = new URLSearchParams(location.search);
// `?wasmUrl=` exercises the escape hatch for serving the module from elsewhere.
const workers = { wasmUrl: q.get('wasmUrl') };
createRoot(document.getElementById('root')).render(createElement(Workspace, { src: q.get('src'), vectorSrc: q.get('vectorSrc'), workers }));
