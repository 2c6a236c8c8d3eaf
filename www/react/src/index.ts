/**
 * `@tessera/react`: deep-zoom images tiled in the browser (or reused from tile-store) in React.
 * Safe to import during server rendering: nothing here touches `window` or `document` until a
 * component mounts; OpenSeadragon and the tile source classes are loaded then.
 */
export { Workspace } from './components/Workspace.js';
export type { WorkspaceProps } from './components/Workspace.js';
export { Viewer } from './components/Viewer.js';
export type { ViewerProps, ViewerState } from './components/Viewer.js';
export { VectorOverlay } from './components/VectorOverlay.js';
export type { VectorOverlayProps } from './components/VectorOverlay.js';
export { VectorCanvas } from './components/VectorCanvas.js';
export { CompareView } from './components/CompareView.js';
export type { CompareViewProps } from './components/CompareView.js';
export type { VectorCanvasProps } from './components/VectorCanvas.js';
export { exportView } from './osd/exportView.js';
export type { ViewPicture } from './osd/exportView.js';
export { MetadataPanel } from './components/MetadataPanel.js';
export type { MetadataPanelProps } from './components/MetadataPanel.js';
export { DamageList } from './components/DamageList.js';
export type { DamageListProps } from './components/DamageList.js';
export { StorePanel } from './components/StorePanel.js';
export type { StorePanelProps } from './components/StorePanel.js';
export { MeasureTools } from './components/MeasureTools.js';
export type { MeasureTool, MeasureToolsProps } from './components/MeasureTools.js';
export { ScaleBar } from './components/ScaleBar.js';
export { EnhanceControls } from './components/EnhanceControls.js';
export { LayerEditor, FeatureProperties } from './components/LayerEditor.js';
export type { LayerEditorProps, FeaturePropertiesProps } from './components/LayerEditor.js';
export { useEditHistory } from './hooks/useEditHistory.js';
export type { EditHistory } from './hooks/useEditHistory.js';
export type { EnhanceControlsProps } from './components/EnhanceControls.js';
export type { ScaleBarProps } from './components/ScaleBar.js';

export { useTilingImage } from './hooks/useTilingImage.js';
export { loadTileSources } from './osd/load.js';
export type { TilingStatus, TilingPhase, TilingSettings, ImageHint, ImageInput, ImageTileSource } from './hooks/useTilingImage.js';
export type { WorkerTileSource, StoreTileSource } from './osd/tileSources.js';
export { loadOpenSeadragon } from './osd/load.js';
export type { OpenSeadragonModule } from './osd/load.js';

export * from './shared.js';
