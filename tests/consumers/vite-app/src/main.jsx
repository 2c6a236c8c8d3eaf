import { createRoot } from 'react-dom/client';
import { Workspace } from '@tessera/react';
import '@tessera/react/styles.css';

const q = new URLSearchParams(location.search);
createRoot(document.getElementById('root')).render(<Workspace src={q.get('src')} vectorSrc={q.get('vectorSrc')} />);
